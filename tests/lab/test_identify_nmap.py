"""`nmap_scan` against real daemons in the lab: the user's nmap runs, its XML is parsed into our
model (skips when nmap or the daemons are not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from identify_daemons import missing_daemons, start

from ppsguard.model.scan import PortState, ScanResult
from ppsguard.scan.engine import ScanOptions
from ppsguard.scan.nmap_run import nmap_scan


@pytest.mark.lab
def test_run_nmap_in_the_lab(lab_factory: object, tmp_path: Path) -> None:
    if shutil.which("nmap") is None or missing_daemons():
        pytest.skip("nmap or the Debian daemons are not installed (make test installs them)")
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    [memcached] = start(srv, "memcached", 11211, tmp_path)
    [sshd] = start(srv, "sshd", 22, tmp_path)

    def scan() -> ScanResult:
        options = ScanOptions(skip_discovery=True, host_timeout=120)
        return nmap_scan([str(srv.ipv4)], "22,11211", options=options, extra_args=["-n"])

    result = scanner.call(scan, timeout=180)
    [host] = result.hosts
    by_port = {p.port: p for p in host.ports}
    assert by_port[22].state is PortState.OPEN and by_port[11211].state is PortState.OPEN
    ssh_service = by_port[22].service
    assert ssh_service is not None and ssh_service.name == "ssh"
    assert ssh_service.product == "OpenSSH" and (ssh_service.version or "").startswith(sshd.version)
    cache = by_port[11211].service
    assert cache is not None and cache.name == "memcached"
    assert memcached.version
    assert "-sV" in result.arguments
