"""Benchmark: service identification, ppsguard against `nmap -sV`, on real Debian daemons.

In one lab run (network namespaces "srv" to "srv4" and "scanner"), the lab's 34 Debian daemons
from 33 packages (tests/lab/identify_daemons*.py: web servers, forward and reverse proxies, DNS
servers on TCP and UDP, mail, FTP, rsync, SMB, SSH, telnet, VNC, databases and caches, brokers,
LDAP, monitoring agents, etcd, OpenVPN) run on their standard ports and again on shuffled
unusual ports (a second DNS or web product on its own host). Both tools identify the same ports
from the scanner host. Points, one each: the service name (same family), the product, and the
version where the service reveals one (the installed package's version is the truth). Printed:
points per protocol family and in all, wall time for each tool, and the ratios. Target: at
least nmap's points in every family, in at most one fifth of its wall time.

    .venv/bin/python benchmarks/service_id.py [--quick] [--seed N]

--quick uses only the shuffled ports (half the port/protocol pairs).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys
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
    LAB_HOSTS,
    STANDARD_PORTS,
    Expected,
    missing_daemons,
    start_all,
    work_dir,
)

# unusual ports for the shuffle: none next to a standard port (etcd and InfluxDB take port + 1)
SPARE_PORTS = [2101 + 1102 * i for i in range(len(STANDARD_PORTS))]
PRODUCT_KEYS = {
    "nginx": "nginx",
    "sshd": "openssh",
    "redis": "redis",
    "memcached": "memcached",
    "vsftpd": "vsftpd",
    "dnsmasq": "dnsmasq",
    "rsyncd": "rsync",
    "mosquitto": "mosquitto",
    "tinyproxy": "tinyproxy",
    "snmpd": "net-snmp",
    "lighttpd": "lighttpd",
    "opensmtpd": "opensmtpd",
    "dovecot-imap": "dovecot",
    "dovecot-pop3": "dovecot",
    "dovecot-imaps": "dovecot",
    "unbound": "unbound",
    "slapd": "openldap",
    "apache2": "apache",
    "squid": "squid",
    "haproxy": "haproxy",
    "named": "bind",
    "nsd": "nsd",
    "telnetd": "telnetd",
    "mariadb": "mariadb",
    "postgresql": "postgresql",
    "node-exporter": "node exporter",
    "zabbix-agent": "zabbix",
    "redis-sentinel": "redis",
    "nats": "nats",
    "influxdb": "influxdb",
    "etcd": "etcd",
    "smbd": "samba",
    "openvpn": "openvpn",
    "vnc": "vnc",
}
FAMILIES = {
    "nginx": "web",
    "lighttpd": "web",
    "tinyproxy": "proxy",
    "sshd": "remote access",
    "redis": "databases/caches",
    "memcached": "databases/caches",
    "vsftpd": "file transfer",
    "rsyncd": "file transfer",
    "dnsmasq": "dns",
    "mosquitto": "brokers",
    "snmpd": "monitoring",
    "opensmtpd": "mail",
    "dovecot-imap": "mail",
    "dovecot-pop3": "mail",
    "dovecot-imaps": "mail",
    "unbound": "dns",
    "slapd": "directory",
    "apache2": "web",
    "squid": "proxy",
    "haproxy": "proxy",
    "named": "dns",
    "nsd": "dns",
    "telnetd": "remote access",
    "vnc": "remote access",
    "mariadb": "databases/caches",
    "postgresql": "databases/caches",
    "redis-sentinel": "databases/caches",
    "influxdb": "databases/caches",
    "node-exporter": "monitoring",
    "zabbix-agent": "monitoring",
    "nats": "brokers",
    "etcd": "cluster",
    "smbd": "file transfer",
    "openvpn": "vpn",
}


def points(item: Expected, service: ServiceInfo | None) -> tuple[int, int]:
    """(points scored, points possible): name, product, and version where one is revealed."""
    possible = 2 + (item.version is not None)
    if service is None or service.name is None:
        return 0, possible
    named = classify.same_service(item.service, service.name) or (
        item.service == "http-proxy" and service.name in ("http-proxy", "squid")
    )
    # lenient for both tools alike: a product or version reported in another field still counts
    # (nmap puts "mosquitto version 2.0.11" in the service name, for example)
    text = " ".join(x for x in (service.name, service.product, service.version, service.extra) if x)
    product = PRODUCT_KEYS[item.daemon] in text.lower()
    version = item.version is not None and (
        (service.version or "").startswith(item.version) or item.version in text
    )
    return int(named) + int(product) + int(version), possible


def _brief(service: ServiceInfo | None) -> str:
    if service is None:
        return "(no result)"
    return f"{service.name} / {service.product} / {service.version}"


def nmap_services(result: ScanResult) -> dict[tuple[str, int, str], ServiceInfo | None]:
    found: dict[tuple[str, int, str], ServiceInfo | None] = {}
    for host in result.hosts:
        for port in host.ports:
            found[(str(host.address), port.port, str(port.protocol))] = port.service
    return found


def where(item: Expected) -> tuple[IPAddress, int, Protocol]:
    return (ipaddress.ip_address(item.address), item.port, Protocol(item.protocol))


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
    with work_dir() as work, Lab(LAB_HOSTS) as lab:
        scanner = lab["scanner"]
        expected: list[Expected] = []
        for placement in placements:
            expected.extend(start_all(lab, placement, work))
        addresses = sorted({e.address for e in expected})
        targets = [where(e) for e in expected]

        def ours() -> tuple[dict[tuple[IPAddress, int, Protocol], ServiceInfo], float]:
            started = time.monotonic()
            found = asyncio.run(identify_services(targets, timeout=2.0))
            return found, time.monotonic() - started

        def theirs() -> tuple[ScanResult, float]:
            tcp = sorted({e.port for e in expected if e.protocol == "tcp"})
            udp = sorted({e.port for e in expected if e.protocol == "udp"})
            ports = f"T:{','.join(map(str, tcp))},U:{','.join(map(str, udp))}"
            started = time.monotonic()
            options = ScanOptions(engine="syn", udp=True, skip_discovery=True, host_timeout=600)
            result = nmap_scan(addresses, ports, options=options, extra_args=["-n"])
            return result, time.monotonic() - started

        our_found, our_time = scanner.call(ours, timeout=120)
        nmap_result, nmap_time = scanner.call(theirs, timeout=900)
    nmap_found = nmap_services(nmap_result)
    table: dict[str, list[int]] = {}  # family -> [ours, nmap's, possible]
    for item in expected:
        mine = our_found.get(where(item))
        other = nmap_found.get((item.address, item.port, item.protocol))
        (mine_pts, possible), (nmap_pts, _) = points(item, mine), points(item, other)
        row = table.setdefault(FAMILIES[item.daemon], [0, 0, 0])
        row[0], row[1], row[2] = row[0] + mine_pts, row[1] + nmap_pts, row[2] + possible
        if mine_pts < possible or nmap_pts < possible:
            want = f"{item.service} {item.product} {item.version or '(no version shown)'}"
            print(f"  {item.daemon} {item.protocol}/{item.port} (want {want}):")
            print(f"    ppsguard {mine_pts}/{possible}: {_brief(mine)}")
            print(f"    nmap     {nmap_pts}/{possible}: {_brief(other)}")
    total = len(expected)
    print(
        f"ports: {total} (daemons on {'shuffled' if args.quick else 'standard and shuffled'} ports)"
    )
    print(f"{'family':<18} {'ppsguard':>9} {'nmap -sV':>9} {'possible':>9}")
    for family, (mine_pts, nmap_pts, possible) in sorted(table.items()):
        print(f"{family:<18} {mine_pts:>9} {nmap_pts:>9} {possible:>9}")
    our_points = sum(row[0] for row in table.values())
    nmap_points = sum(row[1] for row in table.values())
    possible = sum(row[2] for row in table.values())
    print(f"ppsguard identify_services: points {our_points}/{possible}, wall {our_time:.2f} s")
    print(f"nmap -sV:                   points {nmap_points}/{possible}, wall {nmap_time:.2f} s")
    print(
        f"ratio: nmap wall / ppsguard wall = {nmap_time / our_time:.1f}x; "
        f"points ppsguard - nmap = {our_points - nmap_points:+d}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
