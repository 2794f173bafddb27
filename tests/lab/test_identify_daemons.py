"""Service identification against real Debian daemons in the lab, on standard and unusual ports."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from identify_daemons import (
    DAEMONS,
    LAB_HOSTS,
    STANDARD_PORTS,
    Expected,
    require_daemons,
    start,
    start_all,
    work_dir,
)
from identify_daemons_more import MORE_UNUSUAL_PORTS

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import Confidence, ServiceInfo
from ppsguard.scan.identify import identify_services

UNUSUAL_PORTS = {
    "nginx": 8053,
    "sshd": 443,
    "redis": 2121,
    "memcached": 5001,
    "vsftpd": 8022,
    "dnsmasq": 5533,
    "rsyncd": 2873,
    "mosquitto": 8883,
    "tinyproxy": 8888,
    "snmpd": 1161,
    "lighttpd": 9443,
    "opensmtpd": 2525,
    "dovecot-imap": 1143,
    "dovecot-pop3": 1110,
    "dovecot-imaps": 10993,
    "unbound": 5353,
    "slapd": 3890,
    **MORE_UNUSUAL_PORTS,
}


@pytest.fixture
def daemon_work() -> Iterator[Path]:
    """Requested before lab_factory, so it is removed after the lab's daemons are stopped."""
    with work_dir() as folder:
        yield folder


@pytest.mark.lab
@pytest.mark.parametrize("placement", ["standard", "unusual"])
def test_debian_daemons_are_identified_with_package_versions(
    daemon_work: Path, lab_factory: object, placement: str
) -> None:
    require_daemons()
    lab = lab_factory(LAB_HOSTS)  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    ports = STANDARD_PORTS if placement == "standard" else UNUSUAL_PORTS
    assert len({DAEMONS[daemon][0] for daemon in ports}) >= 30  # Debian packages
    expected: list[Expected] = start_all(lab, ports, daemon_work)
    address = ipaddress.ip_address(srv.ipv4)

    def where(item: Expected) -> tuple[IPAddress, int, Protocol]:
        return (ipaddress.ip_address(item.address), item.port, Protocol(item.protocol))

    targets = [where(e) for e in expected]

    def scan() -> dict[tuple[IPAddress, int, Protocol], ServiceInfo]:
        return asyncio.run(identify_services(targets, timeout=2.0))

    found = scanner.call(scan, timeout=60)
    for item in expected:
        service = found[where(item)]
        got = (service.name, service.product, service.version)
        assert got == (item.service, item.product, item.version), (item, service)
        assert service.confidence in (Confidence.CONFIRMED, Confidence.MATCHED)
        assert service.evidence is not None and service.evidence.response
        if item.daemon.startswith("dovecot"):  # STARTTLS, STLS or implicit TLS: certificate read
            implicit = item.daemon == "dovecot-imaps"
            assert service.tls is not None and service.tls.subject == "CN=lab.test"
            assert service.tls.starttls == (None if implicit else item.service)
    if placement == "unusual":
        ssh_on_https = found[(address, 443, Protocol.TCP)]
        assert ssh_on_https.mismatch is not None and ssh_on_https.mismatch.found == "ssh"
    else:
        assert all(found[where(e)].mismatch is None for e in expected)


@pytest.mark.lab
def test_a_proxy_in_front_of_a_web_server_is_named_as_the_proxy(
    lab_factory: object, tmp_path: Path
) -> None:
    require_daemons()
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    start(srv, "nginx", 80, tmp_path)
    (proxy,) = start(srv, "tinyproxy-front", 8118, tmp_path)  # relays to nginx on port 80
    key = (ipaddress.ip_address(srv.ipv4), 8118, Protocol.TCP)
    found = scanner.call(lambda: asyncio.run(identify_services([key], timeout=2.0)), timeout=60)
    service = found[key]
    # the answer is nginx's page, relayed: only Via names the proxy that answered us
    assert service.evidence is not None and "Server: nginx" in (service.evidence.response or "")
    assert (service.name, service.product, service.version) == (
        "http-proxy",
        "Tinyproxy",
        proxy.version,
    )
    assert service.extra is not None and "behind it: nginx" in service.extra
    assert service.mismatch is None  # a proxy on a web port is the same door
