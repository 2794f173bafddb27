"""The risk catalog: completeness, consistency with the service catalog, and lookups."""

from __future__ import annotations

import re

import pytest

from ppsguard.errors import InputError
from ppsguard.knowledge.risks import (
    RISK_KINDS,
    Risk,
    parse_risks_toml,
    risk_by_id,
    risk_catalog,
    risks_for,
)
from ppsguard.knowledge.services import builtin_catalog
from ppsguard.model.findings import Severity
from ppsguard.model.net import Protocol

TCP, UDP = Protocol.TCP, Protocol.UDP
# NIS has no fixed port (rpcbind assigns it), so its names are matched from identification only.
NAMES_WITHOUT_FIXED_PORT = {"ypserv", "ypbind", "ypxfrd", "nis"}


def test_severity_order() -> None:
    order = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
    assert [s.rank for s in order] == [0, 1, 2, 3, 4]
    assert sorted(reversed(order)) == order
    assert Severity.HIGH > Severity.MEDIUM >= Severity.MEDIUM > Severity.INFO
    assert max(order) is Severity.CRITICAL
    assert Severity("high") is Severity.HIGH


@pytest.mark.parametrize("risk", risk_catalog(), ids=lambda risk: risk.id)
def test_every_risk_is_complete_and_consistent(risk: Risk) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", risk.id)
    assert isinstance(risk.severity, Severity)
    assert risk.kind in RISK_KINDS
    assert risk.id.startswith(
        {"cleartext": "cleartext-", "legacy": "legacy-", "exposure": "exposed-"}[risk.kind]
    )
    for text in (risk.title, risk.reason, risk.remedy):
        assert text.strip() and "\n" not in text
    assert risk.reason.endswith(".") and risk.remedy.endswith(".")
    assert risk.ports or risk.services
    catalog = builtin_catalog()
    for pair in risk.ports:
        assert pair in catalog.pairs(), f"{risk.id}: {pair} has no service in the catalog"
    known = set(catalog.known_names())
    for name in risk.services:
        assert name in known or name in NAMES_WITHOUT_FIXED_PORT, f"{risk.id}: unknown {name}"


def test_catalog_ids_are_unique_and_cover_the_hardening_list() -> None:
    ids = [risk.id for risk in risk_catalog()]
    assert len(ids) == len(set(ids))
    must_flag = [
        (23, TCP), (21, TCP), (69, UDP), (512, TCP), (513, TCP), (514, TCP), (161, UDP),
        (162, UDP), (110, TCP), (143, TCP), (80, TCP), (389, TCP), (6000, TCP), (79, TCP),
        (7, TCP), (9, UDP), (13, TCP), (19, UDP), (37, TCP), (111, TCP), (517, UDP), (518, UDP),
        (3306, TCP), (5432, TCP), (27017, TCP), (6379, TCP), (11211, TCP), (9200, TCP),
        (2375, TCP), (10250, TCP), (2379, TCP), (6443, TCP), (3389, TCP), (5900, TCP),
        (5985, TCP), (445, TCP), (1433, TCP),
    ]  # fmt: skip
    for port, proto in must_flag:
        assert risks_for(port, proto), f"{port}/{proto} has no risk"


@pytest.mark.parametrize(
    ("port", "protocol", "service", "expected_id"),
    [
        (23, TCP, None, "cleartext-telnet"),
        (2323, TCP, "telnet", "cleartext-telnet"),
        (2375, TCP, None, "exposed-docker-api"),
        (10250, TCP, None, "exposed-kubelet"),
        (6379, TCP, None, "exposed-cache-redis"),
        (7379, TCP, "Redis", "exposed-cache-redis"),
        (4450, TCP, "microsoft-ds", "exposed-file-sharing-smb"),
        (40000, TCP, "ypserv", "legacy-nis"),
        (11211, UDP, None, "exposed-cache-memcached"),
    ],
)
def test_risks_for_by_port_and_by_name(
    port: int, protocol: Protocol, service: str | None, expected_id: str
) -> None:
    assert expected_id in [risk.id for risk in risks_for(port, protocol, service)]


def test_risks_for_respects_protocol() -> None:
    assert risks_for(3306, UDP) == ()
    assert risks_for(3306, UDP, "mysql") == ()  # the risk is about the TCP service
    assert risks_for(23, UDP) == ()
    assert risks_for(50000, TCP) == ()
    assert risks_for(50000, TCP, "unknown-thing") == ()


def test_risks_for_orders_most_severe_first() -> None:
    found = risks_for(111, TCP, "ypserv")
    assert [r.id for r in found] == ["legacy-nis", "legacy-rpcbind"]
    ranks = [r.severity.rank for r in risks_for(9000, TCP, "minio")]
    assert ranks == sorted(ranks, reverse=True)


def test_risk_by_id() -> None:
    assert risk_by_id("cleartext-telnet").severity is Severity.HIGH
    with pytest.raises(InputError, match=r"unknown risk id.*did you mean 'cleartext-telnet'"):
        risk_by_id("cleartext-telnett")
    with pytest.raises(InputError, match="unknown risk id"):
        risk_by_id("zzz")


GOOD = """
[[risk]]
id = "legacy-thing"
severity = "low"
kind = "legacy"
title = "Thing"
ports = ["7-8/udp"]
services = ["Thing"]
reason = "Because."
remedy = "Stop it."
"""


def test_parse_risks_toml_good() -> None:
    (risk,) = parse_risks_toml(GOOD)
    assert risk.ports == ((7, UDP), (8, UDP))
    assert risk.services == ("thing",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing"),
        ("[[risk]", "invalid TOML"),
        (GOOD.replace('severity = "low"', 'severity = "dire"'), "bad severity"),
        (GOOD.replace('kind = "legacy"', 'kind = "odd"'), "kind must be"),
        (GOOD.replace('id = "legacy-thing"', 'id = "Bad Id"'), "bad or duplicate id"),
        (GOOD + GOOD, "bad or duplicate id"),
        (GOOD.replace('"7-8/udp"', '"7/xyz"'), "bad port"),
        (GOOD.replace('"7-8/udp"', '"1-9999/udp"'), "bad port range"),
        (GOOD.replace('reason = "Because."', 'reason = ""'), "reason must be"),
        (GOOD.replace('remedy = "Stop it."\n', ""), "exactly the keys"),
        (GOOD.replace('["7-8/udp"]', "[]").replace('["Thing"]', "[]"), "ports or services"),
    ],
)
def test_parse_risks_toml_rejects_bad_data(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_risks_toml(text)
