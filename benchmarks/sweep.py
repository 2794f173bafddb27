"""Benchmark a subnet sweep: `pps scan` against nmap on a /22 of a dozen lab hosts (same run).

Lab: a scanner and twelve hosts spread over 198.18.12.0/22 on one bridge: four with SSH and HTTP
open (one also 8080 and 443), four with no listener (every port closed), four firewalled to drop
all IP (they still answer ARP). The rest of the 1,024 addresses are empty.
  ports      `pps scan NET/22 --top-ports 100` vs `nmap -T4 --top-ports 100 NET/22`
  discovery  `pps scan -sn NET/22` vs `nmap -T4 -sn NET/22`
Both run as root from the scanner host (SYN scans, ARP discovery), interleaved (ours, nmap, ours,
nmap, ...) so both see the same machine load. Printed per comparison: the live hosts and open
ports each found, whether they are the same and match the lab's truth, best and median times and
the ratio of bests. Target of issue 22: the same hosts and ports as nmap in <= 1/3 of its time.

ppsguard runs as installed, from compiled bytecode (`support/bytecode.py`): a warm-up run writes
it to a temporary PYTHONPYCACHEPREFIX (an environment with PYTHONDONTWRITEBYTECODE=1 would
otherwise recompile about 150 modules on every run, ~0.15 s of CPU that an installed package
never spends).

Runs: 3 of each; `--quick`: 1 of each (about half a minute, mostly nmap).
`python benchmarks/sweep.py [--quick]` (root).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

from ppsguard.lab.hosts import Host, HostSpec, Lab
from support.bytecode import installed_env

NET = ipaddress.IPv4Network("198.18.12.0/22")
NUMBERS = (3, 5, 77, 130, 255, 256, 300, 511, 700, 800, 1000, 1022)
DROP_ALL = (
    "table inet wall {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n"
)
Found = dict[str, tuple[int, ...]]


def build(lab: Lab) -> Found:
    """Start listeners and firewalls; the truth: live address -> open ports."""
    truth: Found = {str(NET[1]): ()}  # the scanner itself
    for i, number in enumerate(NUMBERS):
        host = lab[f"h{number}"]
        ports: tuple[int, ...] = ()
        if i % 3 == 0:
            ports = (22, 80, 443, 8080) if i == 0 else (22, 80)
            for port in ports:
                host.listen(port)
        elif i % 3 == 1:
            host.nft(DROP_ALL)
        truth[str(NET[number])] = ports
    return truth


ENV: dict[str, str] = {}  # the children's environment: `support.bytecode.installed_env`


def timed(host: Host, argv: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = host.run(argv, timeout=600, check=False, env=ENV)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed, done.stdout


def pps(host: Host, *args: str) -> tuple[float, Found]:
    elapsed, out = timed(host, [sys.executable, "-m", "ppsguard", "scan", "--json", *args])
    doc: dict[str, Any] = json.loads(out)
    found = {
        h["address"]: tuple(sorted(p["port"] for p in h["ports"] if p["state"] == "open"))
        for h in doc["hosts"]
        if h["state"] == "up"
    }
    return elapsed, found


def nmap(host: Host, *args: str) -> tuple[float, Found]:
    elapsed, out = timed(host, ["nmap", "-n", "-oX", "-", *args])
    found: Found = {}
    for node in ET.fromstring(out).iter("host"):
        status = node.find("status")
        if status is None or status.get("state") != "up":
            continue
        address = next(
            a.get("addr", "") for a in node.iter("address") if a.get("addrtype") == "ipv4"
        )
        found[address] = tuple(
            sorted(
                int(p.get("portid", "0"))
                for p in node.iter("port")
                if (s := p.find("state")) is not None and s.get("state") == "open"
            )
        )
    return elapsed, found


def show(found: Found) -> str:
    return f"{len(found)} up; " + " ".join(
        f"{a}{':' + ','.join(map(str, p)) if p else ''}"
        for a, p in sorted(found.items(), key=lambda item: ipaddress.ip_address(item[0]))
    )


def compare(
    name: str, scanner: Host, ours: list[str], theirs: list[str], truth: Found, runs: int
) -> str:
    mine: list[float] = []
    other: list[float] = []
    mine_found: list[Found] = []
    other_found: list[Found] = []
    for _ in range(runs):
        elapsed, found = pps(scanner, *ours)
        mine.append(elapsed)
        mine_found.append(found)
        elapsed, found = nmap(scanner, *theirs)
        other.append(elapsed)
        other_found.append(found)
    same = all(m == other_found[0] for m in [*mine_found, *other_found])
    exact = all(m == truth for m in mine_found)
    ratio = min(other) / min(mine)
    print(f"  ppsguard found: {show(mine_found[0])}")
    print(f"  nmap found:     {show(other_found[0])}")
    return (
        f"{name}: ppsguard best {min(mine):.2f}s median {statistics.median(mine):.2f}s; "
        f"nmap {' '.join(theirs[:-1])} best {min(other):.2f}s "
        f"median {statistics.median(other):.2f}s; ratio {ratio:.1f}x; "
        f"same hosts/ports as nmap {'yes' if same else 'NO'}, as the lab's truth "
        f"{'yes' if exact else 'NO'}; target (same, >= 3x): "
        f"{'met' if same and ratio >= 3 else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 run of each instead of 3")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    specs = [HostSpec("scanner", str(NET[1]), "2001:db8:12::1")]
    specs += [HostSpec(f"h{n}", str(NET[n]), f"2001:db8:12::{n:x}") for n in NUMBERS]
    lines: list[str] = []
    with (
        Lab(specs, subnet4=str(NET), subnet6="2001:db8:12::/64") as lab,
        installed_env() as env,
    ):
        ENV.update(env)
        truth = build(lab)
        scanner = lab["scanner"]
        pps(scanner, "-sn", str(NET[1]))  # warm-up: compiles the bytecode once
        print(f"truth: {show(truth)}")
        for name, ours, theirs, want in (
            ("ports /22 top-100", ["--top-ports", "100"], ["-T4", "--top-ports", "100"], truth),
            ("discovery /22 -sn", ["-sn"], ["-T4", "-sn"], {a: () for a in truth}),
        ):
            print(f"{name}:")
            line = compare(name, scanner, [*ours, str(NET)], [*theirs, str(NET)], want, runs)
            print("  " + line, flush=True)
            lines.append(line)
    print("\nsummary:")
    for line in lines:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
