"""The scan command's output paths: the fast compact JSON writer and host-result ordering."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest

from ppsguard.model.net import Protocol
from ppsguard.model.scan import (
    Confidence,
    HostResult,
    HostState,
    PortResult,
    PortState,
    Reason,
    ScanResult,
    ScanStats,
    ServiceInfo,
)
from ppsguard.report.scan_document import scan_document, scan_json_compact
from ppsguard.scan.engine import ScanOptions, _Host, _host_result

_STATES = [
    (PortState.OPEN, Reason.SYN_ACK),
    (PortState.CLOSED, Reason.RESET),
    (PortState.FILTERED, Reason.NO_RESPONSE),
    (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
]


def _host(n_ports: int, hostname: str | None) -> _Host:
    host = _Host(ipaddress.ip_address("198.18.0.2"), hostname)
    for port in range(n_ports, 0, -1):  # reverse: the result must come out sorted
        state, reason = _STATES[port % len(_STATES)]
        proto = Protocol.TCP if port % 7 else Protocol.UDP
        host.results.setdefault(proto, {})[port] = (state, reason, None)
    return host


def _result(*hosts: HostResult) -> ScanResult:
    stats = ScanStats(dt.datetime(2026, 1, 2, tzinfo=dt.UTC), 1.5, 10, 2, 42)
    return ScanResult(hosts=hosts, stats=stats, engine="syn", arguments='pps scan "x"')


@pytest.mark.parametrize("n_ports", [0, 3, 5000])  # 5000: past the bucket-ordering threshold
@pytest.mark.parametrize("hostname", [None, 'we"ird\\name\u00e9\x1b[31m'])
def test_compact_json_equals_the_json_module(n_ports: int, hostname: str | None) -> None:
    host = _host_result(_host(n_ports, hostname), ScanOptions(all_states=True))
    service = ServiceInfo(name="ssh", product='Open"SSH', confidence=Confidence.MATCHED)
    extra = HostResult(
        ipaddress.ip_address("2001:db8::5"),
        None,
        HostState.UP,
        (PortResult(22, Protocol.TCP, PortState.OPEN, Reason.SYN_ACK, service, 64),),
        {"open": 1},
        ("implausible-open-share",),
    )
    down = HostResult(ipaddress.ip_address("198.18.0.9"), None, HostState.DOWN)
    result = _result(host, extra, down)
    expected = json.dumps(scan_document(result), ensure_ascii=False, separators=(",", ":"))
    assert scan_json_compact(result) == expected
    assert json.loads(scan_json_compact(result))["hosts"][0]["hostname"] == hostname


@pytest.mark.parametrize("n_ports", [10, 5000])
def test_host_result_orders_protocol_major_then_port(n_ports: int) -> None:
    host = _host_result(_host(n_ports, None), ScanOptions(all_states=True))
    keys = [(p.protocol.value, p.port) for p in host.ports]
    assert keys == sorted(keys)
    assert len(keys) == n_ports
    assert sum(host.summary.values()) == n_ports
    opened = _host_result(_host(n_ports, None), ScanOptions())
    assert [p.state for p in opened.ports] == [PortState.OPEN] * len(opened.ports)
    assert [(p.protocol.value, p.port) for p in opened.ports] == sorted(
        (p.protocol.value, p.port) for p in opened.ports
    )


def test_unresolved_name_has_no_address_in_any_output() -> None:
    from ppsguard.report.grepable import render_grepable
    from ppsguard.report.nmapxml import render_xml

    failed = _host(0, "no-such-host.invalid")
    failed.error = "cannot resolve: [Errno -2] Name or service not known -- <x>"
    live = _host_result(_host(3, None), ScanOptions())
    result = _result(_host_result(failed, ScanOptions()), live)
    doc = json.loads(scan_json_compact(result))
    assert doc["hosts"][0] == {
        "address": None,
        "hostname": "no-such-host.invalid",
        "state": "unknown",
        "reason": None,
        "ports": [],
        "summary": {},
        "flags": [],
        "error": failed.error,
    }
    xml = render_xml(result)
    assert xml.count("<host ") == 1 and "0.0.0.0" not in xml
    assert "<!-- ppsguard: no-such-host.invalid: cannot resolve" in xml
    grepable = render_grepable(result)
    assert "0.0.0.0" not in grepable
    assert "# ppsguard: no-such-host.invalid: cannot resolve" in grepable


def test_observer_subclass_overriding_on_port_still_gets_ports() -> None:
    import asyncio

    from ppsguard.scan import NullObserver, scan

    seen: list[int] = []

    class Ports(NullObserver):
        def on_port(self, address: object, result: PortResult) -> None:
            seen.append(result.port)

    opts = ScanOptions(engine="connect", skip_discovery=True, confirm=False)
    result = asyncio.run(scan(["127.0.0.1"], "1-40", options=opts, observer=Ports()))
    assert sorted(seen) == list(range(1, 41))
    assert sum(result.hosts[0].summary.values()) == 40
