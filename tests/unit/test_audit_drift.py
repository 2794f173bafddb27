"""The drift engine over hand-made observations: one table row per finding type, identity rules."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest

from ppsguard.audit import baseline_for, evaluate
from ppsguard.audit.views import (
    FirewallState,
    FirewallView,
    Listener,
    Observations,
    OutsideView,
    Reach,
    ReachState,
    Vantage,
)
from ppsguard.model.findings import FindingType, Severity, finding_id
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import Exposure, exposure_of
from ppsguard.registry.load import parse_registry

REGISTRY = """
version: 1
default: deny
networks:
  office:
    addresses: [198.18.0.0/24]
hosts:
  lab:
    addresses: [198.18.0.1]
    denies:
      - id: mysql
        service: mysql
        log: true
    provides:
      - id: ssh
        port: 22/tcp
        from: [office]
        process: sshd
      - id: http
        port: 80/tcp
        from: anywhere
      - id: redis
        port: 6379/tcp
        from: anywhere
        bind: loopback
      - id: legacy-app
        port: 8081/tcp
        from: anywhere
        waiver:
          reason: vendor fix pending
          expires: 2020-01-01
"""
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LAB = ipaddress.ip_address("198.18.0.1")
SCANNER = ipaddress.ip_address("198.18.0.2")


def listen(
    port: int, address: str = "0.0.0.0", *, exe: str = "/usr/bin/python3", pid: int = 100
) -> Listener:
    ip = ipaddress.ip_address(address)
    return Listener(
        protocol=Protocol.TCP,
        family=Family.of(ip),
        address=ip,
        port=port,
        exposure=exposure_of(ip),
        process=exe.rsplit("/", 1)[-1],
        exe=exe,
        pids=(pid,),
    )


def healthy(pid: int = 100) -> list[Listener]:
    return [
        listen(22, exe="/usr/sbin/sshd", pid=pid),
        listen(80, pid=pid + 1),
        listen(8081, pid=pid + 2),
        listen(3306, pid=pid + 3),
        listen(6379, "127.0.0.1", pid=pid + 4),
    ]


def _order(item: tuple[str, int | None]) -> tuple[str, int]:
    return (item[0], -1 if item[1] is None else item[1])


def run(
    listeners: list[Listener] | None,
    *,
    firewall: FirewallView | None = None,
    outside: OutsideView | None = None,
    registry: str | None = REGISTRY,
) -> list[tuple[str, int | None]]:
    report = audit(listeners, firewall=firewall, outside=outside, registry=registry)
    return sorted(((f.type.value, f.port) for f in report.findings), key=_order)


def audit(
    listeners: list[Listener] | None,
    *,
    firewall: FirewallView | None = None,
    outside: OutsideView | None = None,
    registry: str | None = REGISTRY,
):  # type: ignore[no-untyped-def]
    reg = parse_registry(registry, "lab.yaml") if registry else None
    baseline, _policy = baseline_for(reg, "lab" if reg else None)
    obs = Observations(
        host="lab",
        observed_at=NOW,
        listeners=tuple(listeners) if listeners is not None else None,
        outside=outside,
        firewall=firewall or FirewallView(FirewallState.ENFORCED),
    )
    return evaluate(
        obs, baseline, registry_file="lab.yaml" if reg else None, host="lab", netns=None
    )


def test_healthy_host_has_only_the_harmless_and_waiver_findings() -> None:
    assert run(healthy()) == [("listening-but-blocked", 3306), ("waiver-expired", None)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda ls: [*ls, listen(1337)], ("unregistered-listener", 1337)),
        (lambda ls: [x for x in ls if x.port != 80], ("missing-service", 80)),
        (
            lambda ls: [x for x in ls if x.port != 6379] + [listen(6379)],
            ("exposure-widened", 6379),
        ),
        (
            lambda ls: [x for x in ls if x.port != 22] + [listen(22, exe="/usr/bin/dropbear")],
            ("owner-changed", 22),
        ),
    ],
)
def test_each_disturbance_adds_exactly_its_finding(change, expected) -> None:  # type: ignore[no-untyped-def]
    before = set(run(healthy()))
    after = set(run(change(healthy())))
    assert after - before == {expected}


def test_telnet_is_undocumented_and_risky() -> None:
    added = set(run([*healthy(), listen(23)])) - set(run(healthy()))
    assert added == {("unregistered-listener", 23), ("risky-service", 23)}


def test_widened_redis_takes_the_critical_exposure_risk_instead_of_a_second_finding() -> None:
    report = audit([x for x in healthy() if x.port != 6379] + [listen(6379)])
    widened = [f for f in report.findings if f.port == 6379]
    assert [f.type for f in widened] == [FindingType.EXPOSURE_WIDENED]
    assert widened[0].severity is Severity.CRITICAL


def test_denied_port_open_from_outside_is_firewall_not_enforcing() -> None:
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset({(Protocol.TCP, 3306), (Protocol.TCP, 80)}),
        (
            Reach(Protocol.TCP, 3306, LAB, ReachState.OPEN),
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN),
        ),
    )
    found = run(healthy(), outside=outside)
    assert ("firewall-not-enforcing", 3306) in found
    assert ("listening-but-blocked", 3306) not in found
    assert not any(t == "risky-service" and p == 3306 for t, p in found)


def test_missing_deny_rule_in_a_changed_table_is_firewall_not_enforcing() -> None:
    fw = FirewallView(FirewallState.CHANGED, missing_entries=frozenset({"mysql"}))
    found = run(healthy(), firewall=fw)
    assert ("firewall-not-enforcing", 3306) in found
    assert ("firewall-not-enforcing", None) not in found  # explained per port


def test_no_firewall_at_all() -> None:
    found = run(healthy(), firewall=FirewallView(FirewallState.NONE))
    assert ("firewall-not-enforcing", None) in found  # the host
    assert ("firewall-not-enforcing", 3306) in found  # the denied database
    assert ("firewall-not-enforcing", 22) in found  # ssh is restricted to the office


def test_documented_open_service_dropped_from_outside_is_stale() -> None:
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset({(Protocol.TCP, 80)}),
        (Reach(Protocol.TCP, 80, LAB, ReachState.FILTERED),),
    )
    report = audit(healthy(), outside=outside)
    blocked = [f for f in report.findings if f.type is FindingType.LISTENING_BUT_BLOCKED]
    assert {f.port for f in blocked} == {80, 3306}
    assert "stale" in next(f.title for f in blocked if f.port == 80)
    assert "harmless" in next(f.title for f in blocked if f.port == 3306)


def test_scan_only_audit_reports_reachable_undocumented_and_mismatch() -> None:
    outside = OutsideView(
        Vantage.NMAP,
        (LAB,),
        frozenset({(Protocol.TCP, 80), (Protocol.TCP, 4444), (Protocol.TCP, 22)}),
        (
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN, "ssh", expected="http", found="ssh"),
            Reach(Protocol.TCP, 4444, LAB, ReachState.OPEN, "krb524"),
            Reach(Protocol.TCP, 22, LAB, ReachState.OPEN, "ssh"),
        ),
    )
    found = run(None, outside=outside)
    assert ("reachable-undocumented", 4444) in found
    assert ("protocol-mismatch", 80) in found
    assert not any(t == "missing-service" for t, _ in found)  # 22 answered; 80 answered


def test_no_registry_everything_is_undocumented_and_a_draft_is_offered() -> None:
    report = audit([listen(23), listen(631, "127.0.0.1")], registry=None)
    kinds = sorted((f.type.value, f.port, f.severity.value) for f in report.findings)
    assert kinds == [
        ("risky-service", 23, "high"),
        ("unregistered-listener", 23, "medium"),
        ("unregistered-listener", 631, "low"),
    ]
    assert report.draft_hint and "pps registry init" in report.draft_hint


def test_restarting_every_service_changes_no_finding_id() -> None:
    disturbed = [*healthy(pid=100), listen(1337, pid=900), listen(23, pid=901)]
    restarted = [*healthy(pid=5000), listen(1337, pid=9000), listen(23, pid=9001)]
    first = {f.id for f in audit(disturbed).findings}
    second = {f.id for f in audit(restarted).findings}
    assert first == second and first


def test_finding_id_uses_identity_fields_only() -> None:
    a = finding_id(FindingType.UNREGISTERED_LISTENER, "tcp", "ipv4", "0.0.0.0", 1337, "/bin/x")
    assert a == finding_id(
        "unregistered-listener", Protocol.TCP, Family.IPV4, "0.0.0.0", 1337, "/bin/x"
    )
    assert a != finding_id("unregistered-listener", "tcp", "ipv4", "0.0.0.0", 1337, "/bin/y")
    assert len(a) == 16


def test_remedies_can_be_run_or_pasted() -> None:
    report = audit([*healthy(), listen(1337)])
    unregistered = next(f for f in report.findings if f.port == 1337)
    assert unregistered.remedy.registry_yaml is not None
    reg = parse_registry(
        REGISTRY.replace(
            "    provides:\n",
            "    provides:\n"
            + "\n".join("      " + line for line in unregistered.remedy.registry_yaml.splitlines())
            + "\n",
        ),
        "lab.yaml",
    )
    assert any(e.id == "port-1337-tcp" for e in reg.hosts[0].provides)
    firewall = audit(healthy(), firewall=FirewallView(FirewallState.NONE)).findings
    assert any(
        "pps policy apply lab.yaml --host lab" in c for f in firewall for c in f.remedy.commands
    )


def test_loopback_exposure_is_not_outward() -> None:
    assert exposure_of(ipaddress.ip_address("::1")) is Exposure.LOOPBACK
    assert run([*healthy(), listen(5555, "::1")]) == sorted(
        [*run(healthy()), ("unregistered-listener", 5555)], key=_order
    )


def test_mismatch_seen_on_both_families_of_one_dual_stack_socket_is_one_finding() -> None:
    v6 = ipaddress.ip_address("2001:db8::1")
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB, v6),
        frozenset({(Protocol.TCP, 80)}),
        (
            Reach(Protocol.TCP, 80, LAB, ReachState.OPEN, "ssh", expected="http", found="ssh"),
            Reach(Protocol.TCP, 80, v6, ReachState.OPEN, "ssh", expected="http", found="ssh"),
        ),
    )
    listeners = [x for x in healthy() if x.port != 80] + [listen(80, "::")]
    mismatches = [
        f
        for f in audit(listeners, outside=outside).findings
        if f.type is FindingType.PROTOCOL_MISMATCH
    ]
    assert len(mismatches) == 1 and mismatches[0].address == "::" and mismatches[0].entry == "http"
