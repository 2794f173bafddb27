"""resolve_query: numbers, names, aliases, PORT/PROTO, and the errors people will type."""

from __future__ import annotations

import pytest

from ppsguard.errors import UsageError
from ppsguard.knowledge.query import PortInfo, port_info, resolve_query
from ppsguard.knowledge.ranges import LINUX_DEFAULT_EPHEMERAL, host_ephemeral_range
from ppsguard.knowledge.services import ServiceCatalog, ServiceEntry, builtin_catalog
from ppsguard.model.net import PortRange, Protocol, RangeClass

TCP, UDP, SCTP = Protocol.TCP, Protocol.UDP, Protocol.SCTP


def pairs(query: str) -> list[tuple[int, Protocol]]:
    return [(m.port, m.protocol) for m in resolve_query(query, builtin_catalog())]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("3306", [(3306, TCP), (3306, UDP)]),
        ("mysql", [(3306, TCP), (3306, UDP)]),
        ("  MySQL ", [(3306, TCP), (3306, UDP)]),
        ("mysql/tcp", [(3306, TCP)]),
        ("23", [(23, TCP)]),
        ("23/tcp", [(23, TCP)]),
        ("23/udp", [(23, UDP)]),
        ("telnet", [(23, TCP)]),
        ("25", [(25, TCP)]),
        ("53/udp", [(53, UDP)]),
        ("53", [(53, TCP), (53, UDP)]),
        ("domain", [(53, TCP), (53, UDP)]),
        ("1337", [(1337, TCP), (1337, UDP)]),
        ("50000", [(50000, TCP), (50000, UDP)]),
        ("50000/sctp", [(50000, SCTP)]),
        ("0", [(0, TCP), (0, UDP)]),
        ("65535", [(65535, TCP), (65535, UDP)]),
        ("6443", [(6443, TCP)]),
        ("514", [(514, TCP), (514, UDP)]),
        ("vnc", [(5900, TCP), (5901, TCP), (5902, TCP), (5903, TCP)]),
        ("ceph-mon", [(3300, TCP), (6789, TCP)]),
    ],
)
def test_resolve_query_table(query: str, expected: list[tuple[int, Protocol]]) -> None:
    assert pairs(query) == expected


def test_resolve_query_facts() -> None:
    (info,) = resolve_query("6443", builtin_catalog())
    assert info.range is RangeClass.REGISTERED
    assert info.services[0] == "kubernetes-api"
    assert [r.id for r in info.risks] == ["exposed-kubernetes-api"]
    assert info.ephemeral is (6443 in host_ephemeral_range())


def test_unassigned_port_has_no_names_or_risks() -> None:
    for info in resolve_query("50000", builtin_catalog()):
        assert info.range is RangeClass.DYNAMIC
        assert info.services == () and info.risks == () and info.entries == ()


def test_port_info_ephemeral_against_given_range() -> None:
    assert port_info(50000, TCP, builtin_catalog(), LINUX_DEFAULT_EPHEMERAL).ephemeral is True
    assert port_info(50000, TCP, builtin_catalog(), PortRange(1024, 2048)).ephemeral is False


def test_to_json_shape_is_exact() -> None:
    (info,) = resolve_query("23/tcp", builtin_catalog())
    data = info.to_json()
    assert list(data) == ["port", "protocol", "range", "ephemeral", "services", "risks"]
    assert data["port"] == 23 and data["protocol"] == "tcp" and data["range"] == "system"
    assert data["services"] == ["telnet"]
    assert data["risks"][0]["id"] == "cleartext-telnet"
    assert list(data["risks"][0]) == ["id", "severity", "reason", "remedy"]


def test_custom_catalog_is_used() -> None:
    catalog = ServiceCatalog([ServiceEntry("widget", 4242, TCP, ("wdg",), "A widget")])
    assert [(m.port, m.services) for m in resolve_query("wdg", catalog)] == [
        (4242, ("widget", "wdg"))
    ]
    assert isinstance(resolve_query("4242", catalog)[0], PortInfo)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("nosuchservice", "unknown service name: 'nosuchservice'"),
        ("mysq", "did you mean 'mysql'"),
        ("telnt", "did you mean 'telnet'"),
        ("65536", "port out of range"),
        ("99999999", "port out of range"),
        ("70000/tcp", "port out of range"),
        ("23/xyz", "unknown protocol"),
        ("23/raw", "unknown protocol"),
        ("23/", "unknown protocol"),
        ("", "empty port query"),
        ("   ", "empty port query"),
        ("-1", "not a port number or service name"),
        ("a b", "not a port number or service name"),
        ("ssh/udp", "has no udp port"),
        ("x" * 500, "too long"),
        ("\x1b[31mred", "not a port number or service name"),
        ("٣٣٠٦", "not a port number or service name"),
    ],
)
def test_resolve_query_errors(query: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        resolve_query(query, builtin_catalog())
    text = str(caught.value)
    assert "\n" not in text and len(text) < 120
