"""Benchmark: service identification, ppsguard against `nmap -sV`, on real Debian daemons.

In one lab run (network namespaces "srv" and "scanner"), nginx, OpenSSH, Redis, memcached,
vsftpd and dnsmasq (TCP and UDP) run on their standard ports and again on shuffled unusual
ports. Both tools identify the same ports from the scanner host; a result is correct when the
service name (same family), product and version match what the installed package reports.
Printed: correct identifications and wall time for each tool, and the ratios.
Target: at least as many correct as nmap, in at most one fifth of its wall time.

    .venv/bin/python benchmarks/service_id.py [--quick] [--seed N]

--quick uses only the shuffled ports (7 instead of 14 port/protocol pairs).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys
import tempfile
import time
from pathlib import Path

from ppsguard.lab.hosts import Lab, lab_unavailable_reason
from ppsguard.model.net import IPAddress, Protocol
from ppsguard.model.scan import ScanResult, ServiceInfo
from ppsguard.scan.engine import ScanOptions
from ppsguard.scan.identify import classify, identify_services
from ppsguard.scan.nmap_run import nmap_scan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lab"))
from identify_daemons import (  # type: ignore[import-not-found,unused-ignore]
    STANDARD_PORTS,
    Expected,
    missing_daemons,
    start,
)

SPARE_PORTS = [2121, 3030, 4343, 5151, 6262, 7373, 8484, 9595, 10606, 12717]
PRODUCT_KEYS = {
    "nginx": "nginx",
    "sshd": "openssh",
    "redis": "redis",
    "memcached": "memcached",
    "vsftpd": "vsftpd",
    "dnsmasq": "dnsmasq",
}


def correct(item: Expected, service: ServiceInfo | None) -> bool:
    if service is None or service.name is None:
        return False
    return (
        classify.same_service(item.service, service.name)
        and PRODUCT_KEYS[item.daemon] in (service.product or "").lower()
        and (service.version or "").startswith(item.version)
    )


def _brief(service: ServiceInfo | None) -> str:
    if service is None:
        return "(no result)"
    return f"{service.name} / {service.product} / {service.version}"


def nmap_services(result: ScanResult) -> dict[tuple[int, str], ServiceInfo | None]:
    found: dict[tuple[int, str], ServiceInfo | None] = {}
    for host in result.hosts:
        for port in host.ports:
            found[(port.port, str(port.protocol))] = port.service
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shuffled ports only")
    parser.add_argument("--seed", type=int, default=7, help="seed for the port shuffle")
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason or missing_daemons():
        print(f"skipped: {reason or 'daemons missing: ' + ', '.join(missing_daemons())}")
        return 0
    shuffled = random.Random(args.seed).sample(SPARE_PORTS, len(STANDARD_PORTS))
    placements = [] if args.quick else [dict(STANDARD_PORTS)]
    placements.append(dict(zip(STANDARD_PORTS, shuffled, strict=True)))
    with Lab(["srv", "scanner"]) as lab, tempfile.TemporaryDirectory() as work:
        srv, scanner = lab["srv"], lab["scanner"]
        expected: list[Expected] = []
        for placement in placements:
            for daemon, port in placement.items():
                expected.extend(start(srv, daemon, port, Path(work)))
        address: IPAddress = ipaddress.ip_address(srv.ipv4)
        targets = [(address, e.port, Protocol(e.protocol)) for e in expected]

        def ours() -> tuple[dict[tuple[IPAddress, int, Protocol], ServiceInfo], float]:
            started = time.monotonic()
            found = asyncio.run(identify_services(targets, timeout=2.0))
            return found, time.monotonic() - started

        def theirs() -> tuple[ScanResult, float]:
            tcp = sorted({e.port for e in expected if e.protocol == "tcp"})
            udp = sorted({e.port for e in expected if e.protocol == "udp"})
            ports = f"T:{','.join(map(str, tcp))},U:{','.join(map(str, udp))}"
            started = time.monotonic()
            options = ScanOptions(engine="syn", udp=True, skip_discovery=True, host_timeout=240)
            result = nmap_scan([str(address)], ports, options=options, extra_args=["-n"])
            return result, time.monotonic() - started

        our_found, our_time = scanner.call(ours, timeout=120)
        nmap_result, nmap_time = scanner.call(theirs, timeout=300)
    nmap_found = nmap_services(nmap_result)
    our_correct = nmap_correct = 0
    for item in expected:
        ours_ok = correct(item, our_found.get((address, item.port, Protocol(item.protocol))))
        nmap_ok = correct(item, nmap_found.get((item.port, item.protocol)))
        our_correct += ours_ok
        nmap_correct += nmap_ok
        if not (ours_ok and nmap_ok):
            mine = our_found.get((address, item.port, Protocol(item.protocol)))
            other = nmap_found.get((item.port, item.protocol))
            print(
                f"  {item.daemon} {item.protocol}/{item.port} (want {item.product} {item.version}):"
            )
            print(f"    ppsguard {'ok' if ours_ok else 'MISS'}: {_brief(mine)}")
            print(f"    nmap     {'ok' if nmap_ok else 'MISS'}: {_brief(other)}")
    total = len(expected)
    print(
        f"ports: {total} (daemons on {'shuffled' if args.quick else 'standard and shuffled'} ports)"
    )
    print(f"ppsguard identify_services: correct {our_correct}/{total}, wall {our_time:.2f} s")
    print(f"nmap -sV:                   correct {nmap_correct}/{total}, wall {nmap_time:.2f} s")
    print(
        f"ratio: nmap wall / ppsguard wall = {nmap_time / our_time:.1f}x; "
        f"correct ppsguard - nmap = {our_correct - nmap_correct:+d}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
