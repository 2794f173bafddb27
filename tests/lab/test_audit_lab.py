"""`pps audit` of a real lab host: set up from a registry, firewall applied, then disturbed.

The target runs ssh-like 22, http 80, a mysql-like 3306 that the registry denies and a
loopback-only 6379; ppsguard's policy is applied with `pps policy apply --netns`. The disturbances
(an undocumented 1337, a cleartext telnet-like 23, 6379 rebound to 0.0.0.0, http stopped, the
mysql deny replaced by an accept) must produce exactly their findings, and restarting every
service (new pids) no new finding. The outside view is a real scan from a second lab host.
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


def registry_text(target: Host) -> str:
    return f"""
version: 1
default: deny
hosts:
  target:
    addresses: [{target.ipv4}, {target.ipv6}]
    denies:
      - id: mysql
        service: mysql
        log: true
        reason: The database never faces the network.
    provides:
      - id: ssh
        port: 22/tcp
        from: anywhere
        purpose: Administration.
        owner: ops
      - id: http
        port: 80/tcp
        from: anywhere
        purpose: The web site.
        owner: web
      - id: redis
        port: 6379/tcp
        from: anywhere
        bind: loopback
        purpose: Cache for the web site, local only.
        owner: web
"""


def pps(*args: str, env_state: Path) -> subprocess.CompletedProcess[str]:
    env = {"PPSGUARD_STATE_DIR": str(env_state), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "ppsguard", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def kinds(report) -> set[tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    return {(f.type.value, f.port) for f in report.findings}


def let_mysql_through(target: Host) -> None:
    """Replace the registry's mysql deny by an accept, inside ppsguard's own table."""
    listing = json.loads(
        target.run(["nft", "-j", "-a", "list", "table", "inet", "ppsguard"]).stdout
    )
    removed = 0
    for item in listing["nftables"]:
        rule = item.get("rule")
        if rule and rule.get("comment") == "mysql":
            target.run(
                [
                    "nft",
                    "delete",
                    "rule",
                    "inet",
                    "ppsguard",
                    rule["chain"],
                    "handle",
                    str(rule["handle"]),
                ]
            )
            removed += 1
    assert removed, "the rendered table carries the mysql deny"
    target.run(
        ["nft", "insert", "rule", "inet", "ppsguard", "input", "tcp", "dport", "3306", "accept"]
    )


def test_audit_reports_exactly_the_disturbances(lab_factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    monkeypatch.setenv("PPSGUARD_STATE_DIR", str(state))
    lab = lab_factory(["target", "probe"])
    target, probe = lab["target"], lab["probe"]
    registry = tmp_path / "lab.yaml"
    registry.write_text(registry_text(target))
    listeners = {
        22: target.listen(22, banner="SSH-2.0-OpenSSH_9.2\r\n"),
        80: target.listen(80),
        3306: target.listen(3306),
        6379: target.listen(6379, address="127.0.0.1"),
    }
    applied = pps(
        "policy",
        "apply",
        str(registry),
        "--netns",
        target.netns,
        "--confirm-within",
        "0",
        env_state=state,
    )
    assert applied.returncode == 0, applied.stderr

    def audit():  # type: ignore[no-untyped-def]
        # The lab's listeners echo what they read, so identification rightly names every one
        # `echo` (a protocol mismatch on each port); this test is about the other findings.
        return audit_machine(
            registry, netns=target.netns, scan=True, scan_from=probe.netns, identify=False
        ).report

    baseline = audit()
    assert baseline.views["firewall"] == "enforced"
    assert kinds(baseline) == {("listening-but-blocked", 3306)}

    listeners[1337] = target.listen(1337)
    listeners[23] = target.listen(23, banner="Debian GNU/Linux 12\r\nlogin: ")
    listeners[6379].stop()
    listeners[6379] = target.listen(6379, address="0.0.0.0")
    listeners.pop(80).stop()
    let_mysql_through(target)

    disturbed = audit()
    expected = {
        ("unregistered-listener", 1337),
        ("unregistered-listener", 23),
        ("risky-service", 23),
        ("exposure-widened", 6379),
        ("missing-service", 80),
        ("firewall-not-enforcing", 3306),
    }
    assert kinds(disturbed) == expected, [
        (f.type.value, f.port, f.title) for f in disturbed.findings
    ]
    assert len(disturbed.findings) == len(expected)
    by = {(f.type.value, f.port): f for f in disturbed.findings}
    assert by[("exposure-widened", 6379)].severity.value == "critical"  # redis risk folded in
    assert any(
        "missing from the table" in e or "open from remote" in e
        for e in by[("firewall-not-enforcing", 3306)].evidence
    )

    old_pids = {port: item.pid for port, item in listeners.items()}
    binds = {6379: "0.0.0.0"}
    for port in list(listeners):
        listeners[port].stop()
        listeners[port] = target.listen(port, address=binds.get(port))
    assert all(listeners[p].pid != old_pids[p] for p in listeners)
    restarted = audit()
    assert {f.id for f in restarted.findings} == {f.id for f in disturbed.findings}


def test_registry_init_then_audit_has_nothing_undocumented(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["target", "probe"])
    target, probe = lab["target"], lab["probe"]
    for port, address in ((22, None), (8080, None), (5432, "127.0.0.1"), (1337, None)):
        target.listen(port, address=address)
    target.listen(5353, protocol="udp", address="0.0.0.0")
    state = tmp_path / "state"
    draft = tmp_path / "draft.yaml"
    before = pps(
        "audit",
        "--netns",
        target.netns,
        "--scan-from",
        probe.netns,
        "--no-identify",
        "--json",
        env_state=state,
    )
    assert before.returncode == 1, before.stderr
    undocumented = [
        f for f in json.loads(before.stdout)["findings"] if f["type"] == "unregistered-listener"
    ]
    assert {f["port"] for f in undocumented} == {22, 8080, 5432, 1337, 5353}

    made = pps(
        "registry",
        "init",
        "--netns",
        target.netns,
        "--host",
        "target",
        "-o",
        str(draft),
        env_state=state,
    )
    assert made.returncode == 0, made.stderr
    assert "TODO" in draft.read_text()
    after = pps(
        "audit",
        str(draft),
        "--netns",
        target.netns,
        "--scan-from",
        probe.netns,
        "--no-identify",
        "--json",
        env_state=state,
    )
    assert after.returncode in (0, 1), after.stderr
    document = json.loads(after.stdout)
    from ppsguard.model.findings import Severity
    from ppsguard.report.audit_document import audit_document, load_audit

    assert audit_document(load_audit(document), Severity.MEDIUM) == document  # schema + loader
    types = {f["type"] for f in document["findings"]}
    assert not types & {
        "unregistered-listener",
        "reachable-undocumented",
        "missing-service",
        "exposure-widened",
        "owner-changed",
    }, document["findings"]
    # the draft restricts by default, and nothing enforces it yet: that is the one thing left
    assert types <= {"firewall-not-enforcing"}


def test_protocol_mismatch_from_identification(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["target", "probe"])
    target, probe = lab["target"], lab["probe"]
    ssh_banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
    target.listen(22, banner=ssh_banner)
    target.listen(80, banner=ssh_banner)  # an ssh daemon behind the http port
    registry = tmp_path / "lab.yaml"
    registry.write_text(
        "version: 1\ndefault: allow\nhosts:\n  target:\n    provides:\n"
        "      - {id: ssh, port: 22/tcp, from: anywhere}\n"
        "      - {id: http, port: 80/tcp, from: anywhere}\n"
    )
    report = audit_machine(registry, netns=target.netns, scan=True, scan_from=probe.netns).report
    assert kinds(report) == {("protocol-mismatch", 80)}, report.findings
    finding = report.findings[0]
    assert finding.entry == "http" and "ssh" in finding.title
    assert any("SSH-2.0" in e for e in finding.evidence)
    door = next(d for d in report.doors if d.port == 80)
    assert door.status.value == "risky" and door.banner and "SSH-2.0" in door.banner


def test_registry_init_from_a_scan(lab_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["target", "probe"])
    target, probe = lab["target"], lab["probe"]
    target.listen(22)
    target.listen(80)
    draft = tmp_path / "scanned.yaml"
    made = probe.run(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "registry",
            "init",
            "--from-scan",
            str(target.ipv4),
            "--host",
            "target",
            "-o",
            str(draft),
        ],
        check=False,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    from ppsguard.registry.load import load_registry

    registry = load_registry(draft)
    host = registry.host("target")
    assert host is not None and target.ipv4 in host.addresses
    ports = {sp.ports.first for entry in host.provides for sp in entry.ports}
    assert ports == {22, 80}
