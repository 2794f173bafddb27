"""The audit's protocol-mismatch rule judges against the registry entry's service when there is
one (else the port's well-known service), and only positively identified services count."""

from __future__ import annotations

import datetime as dt
import ipaddress

from ppsguard.audit import baseline_for, knowledge_risks, knowledge_service_name
from ppsguard.audit.context import AuditContext
from ppsguard.audit.rules import Case
from ppsguard.audit.rules.outside import protocol_mismatch
from ppsguard.audit.views import Observations, OutsideView, Reach, ReachState, Vantage
from ppsguard.model.net import Protocol
from ppsguard.registry.load import parse_registry

LAB = ipaddress.ip_address("198.18.0.1")
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
REGISTRY = """
version: 1
default: allow
services:
  web-cache: [6379/tcp]  # a name we cannot identify: the registry claims nothing we can judge
  ftp: [21/tcp, 873/tcp]  # a declared name wins over the catalog
hosts:
  lab:
    addresses: [198.18.0.1]
    provides:
      - {id: cache, service: web-cache, from: anywhere}
      - {id: backup, service: ftp, from: anywhere}
      - {id: notebook, port: 8888/tcp, from: anywhere}
"""


def findings(*reaches: Reach) -> list[tuple[int | None, str]]:
    baseline, _policy = baseline_for(parse_registry(REGISTRY, "lab.yaml"), "lab")
    scanned = frozenset((r.protocol, r.port) for r in reaches)
    outside = OutsideView(Vantage.REMOTE, (LAB,), scanned, reaches)
    obs = Observations("lab", NOW, (), outside, None)
    context = AuditContext(
        today=NOW.date(),
        risks=knowledge_risks,
        service_name=knowledge_service_name,
        registry_file="lab.yaml",
        host="lab",
    )
    return [(f.port, f.title) for f in protocol_mismatch(Case.of(obs, baseline, context))]


def test_registry_service_replaces_the_port_table() -> None:
    # HTTP on 6379: the port table says redis, the registry says web-cache: no finding
    http_on_redis = Reach(
        Protocol.TCP, 6379, LAB, ReachState.OPEN, "http",
        expected="redis", found="http", identified="http",
    )  # fmt: skip
    # a real rsync on 873 documented as ftp: the registry is contradicted
    rsync = Reach(Protocol.TCP, 873, LAB, ReachState.OPEN, "rsync", identified="rsync")
    # nothing proved on 8888 (a port-number guess): never a mismatch
    guessed = Reach(Protocol.TCP, 8888, LAB, ReachState.OPEN, "jupyter")
    found = findings(http_on_redis, rsync, guessed)
    assert [port for port, _ in found] == [873]
    assert "should be ftp but rsync answers" in found[0][1]
