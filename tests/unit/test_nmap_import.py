"""nmap XML import: real-shaped documents, round trips through our writer, hostile XML."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
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
from ppsguard.scan.nmap_import import load_nmap_xml

NMAP_SV = (Path(__file__).parent.parent / "samples" / "services" / "nmap-sv.xml").read_text()


def test_load_nmap_sv_output() -> None:
    result = load_nmap_xml(NMAP_SV, "scan.xml")
    assert result.engine == "connect" and result.stats.elapsed_s == pytest.approx(11.2)
    [host] = result.hosts
    assert host.address == ipaddress.ip_address("198.18.0.2") and host.hostname == "srv.lab.test"
    assert host.summary == {"open": 3, "closed": 997}
    ssh, http, redis = host.ports
    assert ssh.service is not None and ssh.service.product == "OpenSSH"
    assert ssh.service.cpe == ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel")
    assert ssh.service.confidence is Confidence.MATCHED
    assert (
        http.service is not None and http.service.name == "https" and http.service.tls is not None
    )
    assert redis.service is not None and redis.service.confidence is Confidence.GUESSED


HOSTILE = [
    (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        "<nmaprun>&lol2;</nmaprun>"
    ),
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<nmaprun>&xxe;</nmaprun>",
    "<nmaprun><host>",
    "<notnmap/>",
    "",
    '<nmaprun><host><address addr="999.1.1.1" addrtype="ipv4"/></host></nmaprun>',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_or_bad_xml_is_refused_with_location(text: str) -> None:
    with pytest.raises(InputError) as caught:
        load_nmap_xml(text, "evil.xml")
    assert str(caught.value).startswith("evil.xml")


def test_malformed_xml_names_line_and_column() -> None:
    with pytest.raises(InputError) as caught:
        load_nmap_xml("<nmaprun>\n<host>\n</nmaprun>", "bad.xml")
    assert caught.value.line == 3 and caught.value.column is not None


def test_escape_sequences_in_xml_are_escaped() -> None:
    text = NMAP_SV.replace('product="nginx"', 'product="nginx&#x1b;]0;pwned&#x7;"')
    text = text.replace("&#x1b;", "\x1b").replace("&#x7;", "\x07")  # raw control chars: XML refuses
    with pytest.raises(InputError):
        load_nmap_xml(text, "ctrl.xml")
    ok = NMAP_SV.replace('product="nginx"', 'product="nginx\u009b31m"')
    port = load_nmap_xml(ok, "c1.xml").hosts[0].ports[1]
    assert port.service is not None and port.service.product == "nginx\\xc2\\x9b31m"


def test_round_trip_through_our_writer() -> None:
    nmapxml = pytest.importorskip("ppsguard.report.nmapxml")
    original = ScanResult(
        hosts=(
            HostResult(
                address=ipaddress.ip_address("2001:db8::2"),
                hostname=None,
                state=HostState.UP,
                ports=(
                    PortResult(
                        443, Protocol.TCP, PortState.OPEN, Reason.SYN_ACK,
                        ServiceInfo("ssh", "OpenSSH", "9.2p1", "protocol 2.0",
                                    ("cpe:/a:openbsd:openssh:9.2p1",), Confidence.CONFIRMED),
                    ),
                    PortResult(53, Protocol.UDP, PortState.OPEN, Reason.UDP_RESPONSE,
                               ServiceInfo("dns", "dnsmasq", "2.90",
                                           confidence=Confidence.MATCHED)),
                ),
                summary={"open": 2},
            ),
        ),
        stats=ScanStats(dt.datetime(2026, 11, 26, tzinfo=dt.UTC), 1.5, 10, 0, 1),
        engine="connect",
        arguments="pps scan -sV",
    )  # fmt: skip
    loaded = load_nmap_xml(nmapxml.render_xml(original), "ours.xml")
    [host] = loaded.hosts
    assert host.address == original.hosts[0].address
    for before, after in zip(original.hosts[0].ports, host.ports, strict=True):
        assert (after.port, after.protocol, after.state) == (
            before.port,
            before.protocol,
            before.state,
        )
        assert after.service is not None and before.service is not None
        assert (
            after.service.name,
            after.service.product,
            after.service.version,
            after.service.cpe,
        ) == (
            before.service.name,
            before.service.product,
            before.service.version,
            before.service.cpe,
        )


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(InputError):
        load_nmap_xml(text, "fuzz.xml")
