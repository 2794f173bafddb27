"""Hostile services in the lab: identification finishes within budget, never crashes, and every
byte the services send comes back escaped."""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
from pathlib import Path

import pytest

from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import ServiceInfo
from ppsguard.scan.identify import identify_services
from ppsguard.testing.certificates import self_signed_pem

SCRIPT = Path(__file__).with_name("hostile_service.py")
MODES = {
    "endless": 7001,
    "drip": 7002,
    "garbage": 7003,
    "escapes": 7004,
    "tarpit": 7005,
    "tls": 7443,
}


@pytest.mark.lab
def test_hostile_services_cannot_stall_crash_or_inject(lab_factory: object, tmp_path: Path) -> None:
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    cert, key = self_signed_pem(tmp_path, common_name="expired.lab.test", expired=True)
    for mode, port in MODES.items():
        extra = [str(cert), str(key)] if mode == "tls" else []
        srv.popen([sys.executable, str(SCRIPT), mode, str(srv.ipv4), str(port), *extra])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listening = srv.run(["ss", "-Hltn"], timeout=10).stdout
        if all(f":{port} " in listening for port in MODES.values()):
            break
        time.sleep(0.1)
    address = ipaddress.ip_address(srv.ipv4)
    targets = [(address, port, Protocol.TCP) for port in MODES.values()]

    def scan() -> tuple[dict[tuple[IPAddress, int, Protocol], ServiceInfo], float]:
        started = time.monotonic()
        found = asyncio.run(identify_services(targets, timeout=2.0))
        return found, time.monotonic() - started

    found, took = scanner.call(scan, timeout=60)
    assert took < 15  # all ports in parallel with a 2 s budget; this only catches a stall
    for (_, port, _), service in found.items():
        evidence = service.evidence
        assert evidence is not None
        shown = (
            f"{service.name} {service.product} {service.extra} {evidence.probe} {evidence.response}"
        )
        assert all(0x20 <= ord(c) < 0x7F for c in shown), (port, shown)
        assert evidence.response is None or len(evidence.response) < 400
    escapes = found[(address, MODES["escapes"], Protocol.TCP)]
    assert escapes.evidence is not None and "\\x1b]0;pwned\\x07" in (
        escapes.evidence.response or ""
    )
    tarpit = found[(address, MODES["tarpit"], Protocol.TCP)]
    assert tarpit.evidence is not None and tarpit.evidence.response is None
    tls = found[(address, MODES["tls"], Protocol.TCP)]
    assert tls.name == "https" and tls.product == "hostile-tls"
    assert tls.tls is not None and tls.tls.expired is True and tls.tls.self_signed is True
    assert tls.tls.subject == "CN=expired.lab.test"
