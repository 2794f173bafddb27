"""Service identification against real Debian daemons in the lab, on standard and unusual ports."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from identify_daemons import SECOND_HOST, STANDARD_PORTS, Expected, missing_daemons, start

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
}


@pytest.mark.lab
@pytest.mark.parametrize("placement", ["standard", "unusual"])
def test_debian_daemons_are_identified_with_package_versions(
    lab_factory: object, tmp_path: Path, placement: str
) -> None:
    missing = missing_daemons()
    if missing:
        pytest.skip(f"daemons not installed: {missing} (make test installs them)")
    lab = lab_factory(["srv", "srv2", "scanner"])  # type: ignore[operator]
    srv, srv2, scanner = lab["srv"], lab["srv2"], lab["scanner"]
    ports = STANDARD_PORTS if placement == "standard" else UNUSUAL_PORTS
    expected: list[Expected] = []
    for daemon, port in ports.items():
        expected.extend(start(srv2 if daemon in SECOND_HOST else srv, daemon, port, tmp_path))
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
    missing = missing_daemons()
    if missing:
        pytest.skip(f"daemons not installed: {missing} (make test installs them)")
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
