"""The finding-type table: one rule per type, each yields its type only, order-free; sources.

One scene disturbs a documented host in every way the audit knows, so every rule has something
to find; the table is then checked as a table (complete, order-free, one place to switch a type
off) and the observation sources as a Protocol (`Recorded` views fed through `gather`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from types import MappingProxyType

import pytest

from ppsguard.audit import baseline_for, evaluate, knowledge_risks, knowledge_service_name
from ppsguard.audit.baseline import Baseline
from ppsguard.audit.context import AuditContext
from ppsguard.audit.drift import find_drift
from ppsguard.audit.rules import RULES, Case
from ppsguard.audit.sources import ObservationSource, Recorded, gather
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
from ppsguard.model.findings import Finding, FindingType
from ppsguard.model.net import Family, Protocol
from ppsguard.model.sockets import exposure_of
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
      - id: telnet
        port: 23/tcp
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
      - id: imap
        port: 143/tcp
        from: anywhere
      - id: legacy-app
        port: 8081/tcp
        from: anywhere
        waiver:
          reason: vendor fix pending
          expires: 2020-01-01
"""
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LAB = ipaddress.ip_address("198.18.0.1")


def listen(port: int, address: str = "0.0.0.0", exe: str = "/usr/bin/python3") -> Listener:
    ip = ipaddress.ip_address(address)
    return Listener(
        Protocol.TCP, Family.of(ip), ip, port, exposure_of(ip), exe.rsplit("/", 1)[-1], exe
    )


def scene(firewall: FirewallState = FirewallState.CHANGED) -> tuple[Observations, Baseline]:
    """Every disturbance at once: a stranger on 1337, telnet and redis exposed, dropbear on the
    ssh port, http dropped, imap gone, mysql open from outside, 4444 open with no listener,
    ssh answering on 80, and ppsguard's table changed."""
    listeners = (
        listen(22, exe="/usr/sbin/dropbear"),
        listen(80),
        listen(1337),
        listen(23),
        listen(3306),
        listen(6379),
        listen(8081),
    )
    probed = {(Protocol.TCP, p) for p in (22, 23, 80, 143, 3306, 4444, 6379, 8081)}
    outside = OutsideView(
        Vantage.REMOTE,
        (LAB,),
        frozenset(probed),
        (
            Reach(Protocol.TCP, 80, LAB, ReachState.FILTERED, "ssh", expected="http", found="ssh"),
            Reach(Protocol.TCP, 3306, LAB, ReachState.OPEN, "mysql"),
            Reach(Protocol.TCP, 4444, LAB, ReachState.OPEN, "krb524"),
        ),
    )
    baseline, _policy = baseline_for(parse_registry(REGISTRY, "lab.yaml"), "lab")
    fw = FirewallView(firewall)
    return Observations("lab", NOW, listeners, outside, fw), baseline


def context() -> AuditContext:
    return AuditContext(
        today=NOW.date(),
        risks=knowledge_risks,
        service_name=knowledge_service_name,
        registry_file="lab.yaml",
        host="lab",
    )


def test_every_finding_type_has_exactly_one_rule() -> None:
    assert set(RULES) == set(FindingType)
    assert isinstance(RULES, MappingProxyType)  # registered in one place, not patched at run time


@pytest.mark.parametrize("kind", list(FindingType), ids=str)
def test_each_rule_finds_its_type_and_only_its_type(kind: FindingType) -> None:
    obs, baseline = scene()
    found = list(RULES[kind](Case.of(obs, baseline, context())))
    assert found, f"the scene should disturb {kind}"
    assert {f.type for f in found} == {kind}


def test_the_scene_findings_worst_first() -> None:
    obs, baseline = scene()
    found = [(f.type.value, f.port, f.severity.value) for f in find_drift(obs, baseline, context())]
    assert found == [
        ("exposure-widened", 6379, "critical"),  # redis's exposure risk folded in
        ("risky-service", 23, "high"),
        ("firewall-not-enforcing", 3306, "high"),
        ("reachable-undocumented", 4444, "high"),
        ("waiver-expired", None, "medium"),
        ("owner-changed", 22, "medium"),
        ("protocol-mismatch", 80, "medium"),
        ("unregistered-listener", 1337, "medium"),
        ("listening-but-blocked", 80, "low"),  # documented open, dropped: stale
        ("missing-service", 143, "low"),
        ("listening-but-blocked", 8081, "low"),
        ("listening-but-blocked", 23, "info"),  # denied and dropped: harmless
    ]
    # no host-level "table changed" finding: the 3306 finding explains it


def test_table_order_does_not_change_the_findings() -> None:
    obs, baseline = scene()
    forward = find_drift(obs, baseline, context())
    backward = find_drift(
        obs, baseline, context(), MappingProxyType(dict(reversed(list(RULES.items()))))
    )
    assert forward == backward and len(forward) >= 11


@pytest.mark.parametrize("kind", list(FindingType), ids=str)
def test_leaving_a_rule_out_of_the_table_drops_exactly_its_type(kind: FindingType) -> None:
    obs, baseline = scene(FirewallState.NONE)
    every = find_drift(obs, baseline, context())
    fewer = find_drift(
        obs, baseline, context(), MappingProxyType({k: v for k, v in RULES.items() if k != kind})
    )
    assert fewer == tuple(f for f in every if f.type is not kind)


def test_findings_come_worst_first_then_by_port() -> None:
    obs, baseline = scene(FirewallState.NONE)
    found = find_drift(obs, baseline, context())
    keys = [(-f.severity.rank, -1 if f.port is None else f.port, f.type.value) for f in found]
    assert keys == sorted(keys)
    assert len({f.id for f in found}) == len(found)


def test_sources_fill_the_views_in_order() -> None:
    obs, baseline = scene()
    start = Observations("lab", NOW, listeners=None)
    local: ObservationSource = Recorded(listeners=obs.listeners, gaps=("owners of 2 sockets",))
    outside: ObservationSource = Recorded(outside=obs.outside)
    firewall: ObservationSource = Recorded(firewall=obs.firewall)
    seen = gather([local, outside, firewall], start)
    assert seen == dataclasses.replace(obs, gaps=("owners of 2 sockets",))
    # a later source fills only the views it holds
    assert gather([local, Recorded(gaps=("late",))], start).listeners == obs.listeners
    report = evaluate(seen, baseline, registry_file="lab.yaml", host="lab", netns=None)
    direct = evaluate(obs, baseline, registry_file="lab.yaml", host="lab", netns=None)
    assert report.findings == direct.findings
    assert report.gaps == ("owners of 2 sockets",)


def _types(found: tuple[Finding, ...]) -> set[FindingType]:
    return {f.type for f in found}


def test_without_any_view_only_the_registry_speaks() -> None:
    _obs, baseline = scene()
    empty = Observations("lab", NOW, listeners=None)
    assert _types(find_drift(empty, baseline, context())) == {FindingType.WAIVER_EXPIRED}
