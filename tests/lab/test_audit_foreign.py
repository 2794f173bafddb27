"""The audit sees the whole rule set: a foreign table, or iptables-legacy, that drops what the
registry allows is a finding naming the table, chain and rule — not "firewall: enforced", and
not a "stale registry entry" when the outside scan finds the port closed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.audit import audit_machine
from ppsguard.lab.hosts import Host

pytestmark = pytest.mark.lab

OTHER = """table inet other {
	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 80 drop
	}
}
"""


def _registry(target: Host) -> str:
    return f"""
version: 1
default: deny
hosts:
  target:
    addresses: [{target.ipv4}]
    provides:
      - id: ssh
        port: 22/tcp
        from: anywhere
      - id: http
        port: 80/tcp
        from: anywhere
"""


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


def test_foreign_drop_is_a_finding_naming_the_rule(lab_factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    monkeypatch.setenv("PPSGUARD_STATE_DIR", str(state))
    lab = lab_factory(["target", "probe"])
    target, probe = lab["target"], lab["probe"]
    registry = tmp_path / "lab.yaml"
    registry.write_text(_registry(target))
    target.listen(22)
    target.listen(80)
    applied = _pps(
        "policy", "apply", str(registry), "--netns", target.netns, "--confirm-within", "0",
        state=state,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr

    def audit():  # type: ignore[no-untyped-def]
        return audit_machine(
            registry, netns=target.netns, scan=True, scan_from=probe.netns, identify=False
        ).report

    clean = audit()
    assert clean.views["firewall"] == "enforced"
    assert not [f for f in clean.findings if f.type.value == "firewall-not-enforcing"]

    target.nft(OTHER)
    target.run(["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"])
    report = audit()
    assert report.views["firewall"] == "overridden"
    foreign = [f for f in report.findings if f.type.value == "firewall-not-enforcing"]
    titles = {f.entry: f.title for f in foreign}
    assert set(titles) == {"http", "ssh"}, [(f.entry, f.title) for f in foreign]
    http = next(f for f in foreign if f.entry == "http")
    assert "inet other chain input" in http.title
    assert any('"tcp dport 80 drop (handle' in e for e in http.evidence), http.evidence
    ssh = next(f for f in foreign if f.entry == "ssh")
    assert "ip filter (iptables-legacy) chain INPUT" in ssh.title
    assert any("-A INPUT -p tcp -m tcp --dport 22 -j DROP" in e for e in ssh.evidence)
    # the scan sees 80 closed: that is the foreign table, not a stale registry entry
    assert not [f for f in report.findings if f.type.value == "listening-but-blocked"]

    status = _pps(
        "policy", "status", "--netns", target.netns, "--registry", str(registry), "--json",
        state=state,
    )  # fmt: skip
    assert status.returncode == 1
    document = json.loads(status.stdout)
    assert document["state"] == "overridden"
    assert {(e["entry"], e["where"]) for e in document["foreign_effects"]} == {
        ("http", "inet other chain input"),
        ("ssh", "ip filter (iptables-legacy) chain INPUT"),
    }
