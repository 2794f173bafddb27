"""Service identification against real Debian daemons in the lab, on standard and unusual ports."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from identify_daemons import STANDARD_PORTS, Expected, missing_daemons, start

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
}


@pytest.mark.lab
@pytest.mark.parametrize("placement", ["standard", "unusual"])
def test_debian_daemons_are_identified_with_package_versions(
    lab_factory: object, tmp_path: Path, placement: str
) -> None:
    missing = missing_daemons()
    if missing:
        pytest.skip(f"daemons not installed: {missing} (make test installs them)")
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    ports = STANDARD_PORTS if placement == "standard" else UNUSUAL_PORTS
    expected: list[Expected] = []
    for daemon, port in ports.items():
        expected.extend(start(srv, daemon, port, tmp_path))
    address = ipaddress.ip_address(srv.ipv4)
    targets = [(address, e.port, Protocol(e.protocol)) for e in expected]

    def scan() -> dict[tuple[IPAddress, int, Protocol], ServiceInfo]:
        return asyncio.run(identify_services(targets, timeout=2.0))

    found = scanner.call(scan, timeout=60)
    for item in expected:
        service = found[(address, item.port, Protocol(item.protocol))]
        got = (service.name, service.product, service.version)
        assert got == (item.service, item.product, item.version), (item, service)
        assert service.confidence in (Confidence.CONFIRMED, Confidence.MATCHED)
        assert service.evidence is not None and service.evidence.response
    if placement == "unusual":
        ssh_on_https = found[(address, 443, Protocol.TCP)]
        assert ssh_on_https.mismatch is not None and ssh_on_https.mismatch.found == "ssh"
    else:
        assert all(
            found[(address, e.port, Protocol(e.protocol))].mismatch is None for e in expected
        )
