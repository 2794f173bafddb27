"""Mismatch alarms against real Debian daemons: common alternate ports stay quiet, a positively
different protocol on a well-known port is reported with its evidence."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from identify_daemons import require_daemons, start

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import ServiceInfo
from ppsguard.scan.identify import identify_services

QUIET = {  # (daemon, port): the same family as the port's service, or a port we cannot judge
    ("nginx", 8888): "http",  # 8888: jupyter, a web port
    ("nginx-tls", 9443): "https",  # 9443: portainer, HTTPS
    ("vsftpd", 2121): "ftp",  # 2121: iprop, a name we cannot identify: no claim
    ("rsyncd", 873): "rsync",  # a real rsync on rsync's port
    ("lighttpd", 8080): "http",
}
LOUD = {  # (daemon, port): (expected, found)
    ("nginx", 6379): ("redis", "http"),  # HTTP on Redis's port
    ("sshd", 25): ("smtp", "ssh"),  # SSH on SMTP's port
}


@pytest.mark.lab
def test_mismatch_only_for_positively_different_services(
    lab_factory: object, tmp_path: Path
) -> None:
    require_daemons()
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    for daemon, port in (*QUIET, *LOUD):
        start(srv, daemon, port, tmp_path)
    address = ipaddress.ip_address(srv.ipv4)
    targets = [(address, port, Protocol.TCP) for _, port in (*QUIET, *LOUD)]

    def scan() -> dict[tuple[IPAddress, int, Protocol], ServiceInfo]:
        return asyncio.run(identify_services(targets, timeout=2.0))

    found = scanner.call(scan, timeout=60)
    for (daemon, port), name in QUIET.items():
        service = found[(address, port, Protocol.TCP)]
        assert service.name == name, (daemon, port, service)
        assert service.mismatch is None, (daemon, port, service)
    for (daemon, port), (expected, name) in LOUD.items():
        service = found[(address, port, Protocol.TCP)]
        assert service.mismatch is not None, (daemon, port, service)
        assert (service.mismatch.expected, service.mismatch.found) == (expected, name)
        assert service.mismatch.source == "well-known port"
        assert service.mismatch.evidence and name in service.mismatch.evidence

    # the registry's word replaces the port table's: nginx on 6379 documented as HTTP is fine,
    # rsync documented as FTP is not
    expect = {
        (address, 6379, Protocol.TCP): "http",
        (address, 873, Protocol.TCP): "ftp",
    }

    def with_registry() -> dict[tuple[IPAddress, int, Protocol], ServiceInfo]:
        return asyncio.run(identify_services(list(expect), timeout=2.0, expect=expect))

    documented = scanner.call(with_registry, timeout=60)
    assert documented[(address, 6379, Protocol.TCP)].mismatch is None
    rsync = documented[(address, 873, Protocol.TCP)].mismatch
    assert rsync is not None and (rsync.expected, rsync.found, rsync.source) == (
        "ftp",
        "rsync",
        "registry",
    )
